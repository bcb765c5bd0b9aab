"""Raw class-name data for ADE20K-150, Cityscapes, Mapillary Vistas, PASCAL VOC, PASCAL Context-59.

Data only. Each table has one class per line, in contiguous training-id order
(line ``i`` is class ``i``). Line format: ``<t>:<names>`` where ``t`` is 1 for a
"thing" class and 0 for "stuff", and ``<names>`` is the comma-separated
synonym list (FC-CLIP's format, split with ``replace(', ', ',').split(',')``).

Sources (FC-CLIP, ``fcclip/data/datasets/openseg_classes.py`` and
``*_with_prompt_eng.txt``):

- ADE20K-150: names and ``isthing`` of ``ADE20K_150_CATEGORIES`` (WordNet
  synonym lists). FC-CLIP additionally ships ``ade20k_150_with_prompt_eng.txt``;
  that file was not available to us, so the base category names are used.
- Cityscapes: ``CITYSCAPES_CATEGORIES`` names and ``isthing``.
- Mapillary Vistas v1.2 (65): ``mapillary_vistas_with_prompt_eng.txt`` names,
  ``isthing`` from ``MAPILLARY_VISTAS_SEM_SEG_CATEGORIES``.
- PASCAL VOC 21 (background first): ``pascal_voc_21_with_prompt_eng.txt``.
- PASCAL Context 59: ``pascal_ctx_59_with_prompt_eng.txt``.
"""

ADE20K_150 = """\
0:wall
0:building
0:sky
0:floor
0:tree
0:ceiling
0:road,route
1:bed
1:window
0:grass
1:cabinet
0:sidewalk,pavement
1:person
0:earth,ground
1:door
1:table
0:mountain,mount
0:plant
1:curtain
1:chair
1:car
0:water
1:painting,picture
1:sofa
1:shelf
0:house
0:sea
1:mirror
0:rug
0:field
1:armchair
1:seat
1:fence
1:desk
0:rock,stone
1:wardrobe,closet,press
1:lamp
1:tub
1:rail
1:cushion
0:base,pedestal,stand
1:box
1:column,pillar
1:signboard,sign
1:chest of drawers,chest,bureau,dresser
1:counter
0:sand
1:sink
0:skyscraper
1:fireplace
1:refrigerator,icebox
0:grandstand,covered stand
0:path
1:stairs
0:runway
1:case,display case,showcase,vitrine
1:pool table,billiard table,snooker table
1:pillow
1:screen door,screen
0:stairway,staircase
0:river
0:bridge,span
1:bookcase
0:blind,screen
1:coffee table
1:toilet,can,commode,crapper,pot,potty,stool,throne
1:flower
1:book
0:hill
1:bench
1:countertop
1:stove
1:palm,palm tree
1:kitchen island
1:computer
1:swivel chair
1:boat
0:bar
1:arcade machine
0:hovel,hut,hutch,shack,shanty
1:bus
1:towel
1:light
1:truck
0:tower
1:chandelier
1:awning,sunshade,sunblind
1:street lamp
1:booth
1:tv
1:plane
0:dirt track
1:clothes
1:pole
0:land,ground,soil
1:bannister,banister,balustrade,balusters,handrail
0:escalator,moving staircase,moving stairway
1:ottoman,pouf,pouffe,puff,hassock
1:bottle
0:buffet,counter,sideboard
0:poster,posting,placard,notice,bill,card
0:stage
1:van
1:ship
1:fountain
0:conveyer belt,conveyor belt,conveyer,conveyor,transporter
0:canopy
1:washer,automatic washer,washing machine
1:plaything,toy
0:pool
1:stool
1:barrel,cask
1:basket,handbasket
0:falls
0:tent
1:bag
1:minibike,motorbike
0:cradle
1:oven
1:ball
1:food,solid food
1:step,stair
0:tank,storage tank
1:trade name
1:microwave
1:pot
1:animal
1:bicycle
0:lake
1:dishwasher
1:screen
0:blanket,cover
1:sculpture
1:hood,exhaust hood
1:sconce
1:vase
1:traffic light
1:tray
1:trash can
1:fan
0:pier
0:crt screen
1:plate
1:monitor
1:bulletin board
0:shower
1:radiator
1:glass,drinking glass
1:clock
1:flag
"""

CITYSCAPES_19 = """\
0:road
0:sidewalk
0:building
0:wall
0:fence
0:pole
0:traffic light
0:traffic sign
0:vegetation
0:terrain
0:sky
1:person
1:rider
1:car
1:truck
1:bus
1:train
1:motorcycle
1:bicycle
"""

# Cityscapes label ids (gtFine ``*_labelIds.png``) of the 19 evaluated classes, in trainId order.
CITYSCAPES_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)

MAPILLARY_VISTAS_65 = """\
1:bird,birds
1:ground animal,ground animate being,dog,cat,horse,cow,sheep,zebra,giraffe
0:curb,curbs
0:fence,fences
0:guard rail
0:barrier
0:wall,walls,brick wall,stone wall,interior wall
0:bike Lane
1:crosswalk
0:curb cut
0:parking
0:pedestrian area
0:rail track
0:road
0:service lane
0:sidewalk,pavement
0:bridge
0:building,buildings
0:tunnel
1:person,child,girl,boy,woman,man,people,children,girls,boys,women,men,lady,guy,ladies,guys,clothes
1:bicyclist,bicyclists
1:motorcyclist,motorcyclists
1:other rider,rider
1:lane marking of crosswalk
0:lane marking
0:mountain,mountains
0:sand
0:sky,clouds
0:snow
0:terrain,river,sea,grass,dirt,rock
0:vegetation,tree,trees,palm tree,bushes
0:water
1:banner,streamer
1:bench,benches
1:bike rack
1:billboard,hoarding
1:catch basin
1:cctv camera,cctv
1:fire hydrant,fireplug,plug
1:junction box
1:mailbox,postbox,mailbox,letter box
1:manhole
1:phone booth,telephone booth,call box,telephone box,telephone kiosk
0:pothole
1:street light
1:pole
1:traffic sign frame
1:utility pole
1:traffic light,traffic signal,traffic lights
1:traffic sign (back),back of traffic sign,traffic sign back
1:traffic sign (front),front of traffic sign,traffic sign front
1:trash can,ashcan,garbage can,wastebin,ash bin,ash-bin,ashbin,dustbin,trash barrel,trash bin
1:bicycle,bike
1:boat
1:bus,autobus,double-decker,jitney,motorbus,motorcoach,omnibus,passenger vehicle
1:car,automobile,cars
1:caravan
1:motorcycle,motorcycles
0:on rails
1:other vehicle,vehicle
1:trailer
1:truck,motortruck
1:wheeled slow
0:car mount
0:ego vehicle
"""

PASCAL_VOC_21 = """\
0:background,crops,bush,shrub,tiles,pavement,rug,carpet,box,boxes,speaker,storage,painting,board,panel,poster,clock,cage,drinking glass,park,plaything,toy,fireplace,bag,bag,bed,bench,book,books,building,buildings,cabinet,drawer,ceiling,computer,computer case,cup,cups,door,fence,floor,flower,grass,lawn,turf,ground,soil,dirt,tiles,keyboard,lamp,mountain,hills,mouse,curtain,platform,sign,street,rock,stone,shelf,sidewalk,sky,clouds,snow,track,train track,tree,trees,wall,water,window,wood,woods
0:aeroplane,airplane,aeroplanes,airplanes
0:bicycle,bicycles,bike,bikes
0:bird,birds
0:boat,boats
0:bottle,bottles,water bottle
0:bus,buses
0:car,cars
0:cat,cats,kitties,kitty
0:chair,chairs
0:cow,cows,calf
0:diningtable,dining table,diningtables,dining tables,plate,plates
0:dog,dogs,puppy,puppies
0:horse,horses,foal
0:motorbike,motorcycle,motorbikes,motorcycles
0:person,child,girl,boy,woman,man,people,childeren,girls,boys,women,men,lady,guy,ladies,guys,clothes
0:pottedplant,pottedplants,plant pot,plant pots,planter,planters
0:sheep
0:sofa,sofas
0:train,trains,locomotive,locomotives,freight train
0:tvmonitor,monitor,tv
"""

PASCAL_CONTEXT_59 = """\
0:aeroplane,aeroplanes,airplanes,airplane
0:bag,bags
0:bed,beds
0:bedclothes
0:bench,benches
0:bicycle,bicycles
0:bird,birds
0:boat,boats
0:book,books
0:bottle,bottles,water bottle
0:building,buildings
0:bus,buses
0:cabinet,cabinets,drawer,drawers
0:car,cars
0:cat,cats,kitties,kitty
0:ceiling
0:chair,chairs
0:cloth,clothes
0:computer case
0:cow,cows
0:cup,cups
0:curtain,curtains
0:dog,dogs,puppy,puppies
0:door,doors
0:fence,fences
0:floor,tile ground,carpet,rug,flooring
0:flower,flowers
0:food
0:grass,grasses,lawn,turf
0:ground,soil,soil ground,dirt ground
0:horse,horses,foal
0:keyboard,keyboards
0:lamp,lamps,bulb,bulbs
0:motorbike,motorcycle,motorbikes,motorcycles
0:mountain,mountains
0:mouse
0:person,child,girl,boy,woman,man,people,childeren,girls,boys,women,men,lady,guy,ladies,guys
0:plate,plates
0:platform,platforms
0:pottedplant,pottedplants,plant pot,plant pots,planter,planters
0:street,streets
0:rock,rocks,stone,stones
0:sheep
0:shelves,shelf
0:sidewalk
0:sign,signs
0:sky,clouds
0:snow
0:sofa
0:diningtable,diningtables,table,tables,desk,desks,side table,side tables,coffee table
0:track,train track,railroad
0:train,trains,locomotive,locomotives,freight train
0:tree,trees
0:truck,trucks
0:tvmonitor,monitor,tv
0:wall,walls
0:water
0:window,windows
0:wood piece
"""
