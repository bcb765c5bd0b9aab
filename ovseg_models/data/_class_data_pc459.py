"""Raw class-name data for PASCAL Context 459 (data only).

One class per line in contiguous id order (line ``i`` is class ``i``), each a
comma-separated synonym list, from FC-CLIP's ``pascal_ctx_459_with_prompt_eng.txt``.
All PASCAL Context classes are treated as semantic ("stuff") classes.
"""

PASCAL_CONTEXT_459 = """\
accordion
aeroplane,aeroplanes,airplanes,airplane
air conditioner
antenna
artillery
ashtray
atrium
baby carriage
bag,bags
ball
balloon
bamboo weaving
barrel
baseball bat
basket
basketball backboard
bathtub
bed,beds
bedclothes
beer
bell
bench,benches
bicycle,bicycles
binoculars
bird,birds
bird cage
bird feeder
bird nest
blackboard
board
boat,boats
bone
book,books
bottle,bottles,water bottle
bottle opener
bowl
box
bracelet
brick
bridge
broom
brush
bucket
building,buildings
bus,buses
cabinet,cabinets,drawer,drawers
cabinet door
cage
cake
calculator
calendar
camel
camera
camera lens
can
candle
candle holder
cap
car,cars
card
cart
computer case
casette recorder
cash register
cat,cats,kitties,kitty
cd
cd player
ceiling
cell phone
cello
chain
chair,chairs
chessboard
chicken
chopstick
clip
clippers
clock
closet
cloth,clothes
clothes tree
coffee
coffee machine
comb
computer
concrete
cone
container
control booth
controller
cooker
copying machine
coral
cork
corkscrew
counter
court
cow,cows
crabstick
crane
crate
cross
crutch
cup,cups
curtain,curtains
cushion
cutting board
dais
disc
disc case
dishwasher
dock
dog,dogs,puppy,puppies
dolphin
door,doors
drainer
dray
drink dispenser
drinking machine
drop
drug
drum
drum kit
duck
dumbbell
earphone
earrings
egg
electric fan
electric iron
electric pot
electric saw
electronic keyboard
engine
envelope
equipment
escalator
exhibition booth
extinguisher
eyeglass
fan
faucet
fax machine
fence,fences
ferris wheel
fire extinguisher
fire hydrant
fire place
fish
fish tank
fishbowl
fishing net
fishing pole
flag
flagstaff
flame
flashlight
floor,tile ground,carpet,rug,flooring
flower,flowers
fly
foam
food
footbridge
forceps
fork
forklift
fountain
fox
frame
fridge
frog
fruit
funnel
furnace
game controller
game machine
gas cylinder
gas hood
gas stove
gift box
glass
glass marble
globe
glove
goal
grandstand
grass,grasses,lawn,turf
gravestone
ground,soil,soil ground,dirt ground
guardrail
guitar
gun
hammer
hand cart
handle
handrail
hanger
hard disk drive
hat
hay
headphone
heater
helicopter
helmet
holder
hook
horse,horses,foal
horse-drawn carriage
hot-air balloon
hydrovalve
ice
inflator pump
ipod
iron
ironing board
jar
kart
kettle
key
keyboard,keyboards
kitchen range
kite
knife
knife block
ladder
ladder truck
ladle
laptop
leaves
lid
life buoy
lamp,lamps
light bulb
lighter
line
lion
lobster
lock
machine
mailbox
mannequin
map
mask
mat
match book
mattress
menu
metal
meter box
microphone
microwave
mirror
missile
model
money
monkey
mop
motorbike,motorcycle,motorbikes,motorcycles
mountain,mountains
mouse
mouse pad
musical instrument
napkin
net
newspaper
oar
ornament
outlet
oven
oxygen bottle
pack
pan
paper
paper box
paper cutter
parachute
parasol
parterre
patio
pelage
pen
pen container
pencil
person,child,girl,boy,woman,man,people,childeren,girls,boys,women,men,lady,guy,ladies,guys
photo
piano
picture
pig
pillar
pillow
pipe
pitcher
plant
plastic
plate,plates
platform,platforms
player
playground
pliers
plume
poker
poker chip
pole
pool table
postcard
poster
pot
pottedplant,pottedplants,plant pot,plant pots,planter,planters
printer
projector
pumpkin
rabbit
racket
radiator
radio
rail
rake
ramp
range hood
receiver
recorder
recreational machines
remote control
road,street,streets
robot
rock,rocks,stone,stones
rocket
rocking horse
rope
rug
ruler
runway
saddle
sand
saw
scale
scanner
scissors
scoop
screen
screwdriver
sculpture
scythe
sewer
sewing machine
shed
sheep
shell
shelves,shelf
shoe
shopping cart
shovel
sidecar
sidewalk
sign,signs
signal light
sink
skateboard
ski
sky,clouds
sled
slippers
smoke
snail
snake
snow
snowmobiles
sofa
spanner
spatula
speaker
speed bump
spice container
spoon
sprayer
squirrel
stage
stair
stapler
stick
sticky note
stone
stool
stove
straw
stretcher
sun
sunglass
sunshade
surveillance camera
swan
sweeper
swim ring
swimming pool
swing
switch
table,diningtable,diningtables,tables,desk,desks,side table,side tables,coffee table
tableware
tank
tap
tape
tarp
telephone
telephone booth
tent
tire
toaster
toilet
tong
tool
toothbrush
towel
toy
toy car
track,train track,railroad
train,trains,locomotive,locomotives,freight train
trampoline
trash bin
tray
tree,trees
tricycle
tripod
trophy
truck,trucks
tube
turtle
tvmonitor,monitor,tv
tweezers
typewriter
umbrella
unknown
vacuum cleaner
vending machine
video camera
video game console
video player
video tape
violin
wakeboard
wall,walls
wallet
wardrobe
washing machine
watch
water
water dispenser
water pipe
water skate board
watermelon
whale
wharf
wheel
wheelchair
window,windows
window blinds
wineglass
wire
wood piece
wool
"""
